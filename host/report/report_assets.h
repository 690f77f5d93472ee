/* report_assets.h — the page's stylesheet and script, report_page.css and
 * report_page.js of this folder, compiled in as strings by the build
 * (tools/embed_text.py writes report_assets.c into the build tree). */
#ifndef ARMO_REPORT_ASSETS_H
#define ARMO_REPORT_ASSETS_H

extern const char armo_report_css[];
extern const char armo_report_js[];

#endif
