/* report_summary.h — the report's numbers as JSON (for scripts: `armo
 * report --summary json`, and the data the HTML page embeds) and as text
 * (`--summary text`). */
#ifndef ARMO_REPORT_SUMMARY_H
#define ARMO_REPORT_SUMMARY_H

#include <jansson.h>
#include <stdio.h>

#include "host/report/report_data.h"

/* Counts, errors by message, score distribution, preference rate overall
 * and per group, RewardBench sections (percent) when the groups are its
 * subsets, best-of-N spread, and per objective its mean reward, gate and
 * coefficient and its share of the total score.  New reference. */
json_t *armo_report_summary_json(const armo_report *r);

/* The same, for a terminal.  -1 on a write error. */
int armo_report_summary_text(const armo_report *r, FILE *f);

#endif
