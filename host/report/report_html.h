/* report_html.h — the self-contained HTML page of `armo report`: inline
 * CSS, inline script drawing SVG charts from one embedded JSON block, no
 * network access; every text HTML-escaped, the JSON escaped for a <script>
 * block. */
#ifndef ARMO_REPORT_HTML_H
#define ARMO_REPORT_HTML_H

#include "base/errors.h"
#include "host/report/report_data.h"

/* Writes the page of r to path (created or replaced).  title: NULL for
 * "armo report: <scores file>". */
int armo_report_write_html(const armo_report *r, const armo_report_opts *o, const char *path,
                           armo_err *e);

/* HTML-escapes s (& < > " ') into out; returns out (NULL on no memory).
 * Exposed for the tests. */
char *armo_html_escape(const char *s);

/* JSON text made safe inside <script>: < > & U+2028 U+2029 as \uXXXX.
 * New string (NULL on no memory). */
char *armo_json_for_script(const char *json);

#endif
