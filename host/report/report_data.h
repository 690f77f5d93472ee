/* report_data.h — what `armo report` knows about a scores file: the
 * aggregates of every record of an `armo score` output (JSONL), computed in
 * one streaming pass, and the per-record detail of a capped selection of
 * records, read in a second pass (report_aggregate.c, report_detail.c).
 *
 * The HTML page (report_html.c) and the --summary printout
 * (report_summary.c) only read this structure; nothing here writes HTML. */
#ifndef ARMO_REPORT_DATA_H
#define ARMO_REPORT_DATA_H

#include <jansson.h>
#include <stdint.h>

#include "base/errors.h"

#define ARMO_REPORT_MAX_OBJ 64 /* objectives read per response (ArmoRM has 19) */
#define ARMO_REPORT_BINS 40    /* bins of the score / margin / spread histograms */
#define ARMO_REPORT_OBJ_BINS 20 /* bins of each objective's reward histogram */
#define ARMO_REPORT_SECTIONS 4  /* RewardBench: Chat, Chat Hard, Safety, Reasoning */

typedef struct {
    const char *scores_path; /* armo score's output (JSONL) */
    const char *input_path;  /* the records it scored (JSONL), or NULL */
    const char *group_by;    /* grouping field of the records; NULL: subset, then category */
    const char *title;       /* page title; NULL: "armo report: <scores file>" */
    int max_detail;          /* records embedded with their full detail (default 500) */
    int heatmap_rows;        /* prompts in the gating heatmap (default 48) */
    int smallest;            /* smallest-margin pairs listed (default 20) */
    int extremes;            /* highest / lowest scored records listed (default 10) */
} armo_report_opts;

void armo_report_opts_default(armo_report_opts *o);

typedef struct {
    double lo, hi; /* the bins split [lo, hi] evenly; lo == hi: one value */
    int nbins;
    int64_t counts[ARMO_REPORT_BINS];
} armo_hist;

typedef struct {
    int64_t n;
    double min, q1, median, q3, max, mean;
} armo_box;

typedef struct {
    char *msg; /* with the "line N (id X): " prefix removed */
    int64_t count;
    int64_t first_line;
} armo_report_error;

typedef struct {
    char *name;
    int64_t pairs, preferred; /* preferred: margin > 0 (chosen scored higher) */
    int rb_section;           /* RewardBench section index, or -1 */
} armo_report_group;

/* One record as the first pass keeps it (what later selections need). */
typedef struct {
    int64_t line;     /* 1-based line of the scores file */
    int64_t in_line;  /* 1-based line of its input record, or 0 */
    int kind;         /* ARMO_REPORT_KIND_* */
    float score;      /* single: its score; pair: chosen's; best-of-N: the best */
    float margin;     /* pair: chosen - rejected; best-of-N: spread (max - min) */
    int dominant;     /* objective of the largest gating weight, or -1 */
    float dominant_w; /* that weight */
} armo_report_rec;

enum {
    ARMO_REPORT_KIND_SINGLE,
    ARMO_REPORT_KIND_PAIR,
    ARMO_REPORT_KIND_BON,
    ARMO_REPORT_KIND_ERROR,
};

typedef struct armo_report {
    char *scores_path, *input_path, *group_field;
    int64_t lines, records, singles, pairs, bons, errors, meta_lines;
    int64_t responses; /* scored responses: 1 per single, 2 per pair, N per best-of-N */
    int64_t tokens;    /* summed over the scored responses */
    int64_t tokens_max;
    json_t *run_meta; /* {"run": {...}} lines of the scores file, merged; or NULL */

    int n_obj;        /* 0: no objective rewards (a single-head model) */
    char *obj_names[ARMO_REPORT_MAX_OBJ];
    armo_hist score_hist; /* every scored response's score */
    armo_box score_box;

    /* per objective, over every scored response */
    armo_box reward_box[ARMO_REPORT_MAX_OBJ];
    armo_hist reward_hist[ARMO_REPORT_MAX_OBJ];
    double mean_reward[ARMO_REPORT_MAX_OBJ], mean_gate[ARMO_REPORT_MAX_OBJ];
    double mean_coef[ARMO_REPORT_MAX_OBJ];
    double contrib_sum[ARMO_REPORT_MAX_OBJ]; /* Σ coefficient × reward */
    double contrib_share[ARMO_REPORT_MAX_OBJ]; /* contrib_sum / Σ_k |contrib_sum_k| */
    int64_t dominant_count[ARMO_REPORT_MAX_OBJ]; /* prompts whose largest gate is it */
    int64_t gated_prompts;

    armo_report_error *errs; /* by count, largest first */
    int n_errs;

    /* pairs */
    armo_hist margin_hist;
    armo_box margin_box;
    int64_t pairs_preferred;
    armo_report_group *groups; /* by name */
    int n_groups;
    int64_t grouped_pairs;
    int rb_present; /* some group is a RewardBench subset */
    double rb_section[ARMO_REPORT_SECTIONS]; /* accuracy 0..1, weighted; < 0: no subset */
    int64_t rb_section_pairs[ARMO_REPORT_SECTIONS];
    double rb_score; /* mean of the sections present, 0..1; < 0: none */

    /* best-of-N */
    armo_hist spread_hist;
    armo_box spread_box;
    int64_t bon_responses;
    double win_reward[ARMO_REPORT_MAX_OBJ], other_reward[ARMO_REPORT_MAX_OBJ];
    int64_t win_n, other_n;

    /* the first pass's records, and the selections made from them */
    armo_report_rec *recs;
    int64_t n_recs;
    int64_t *smallest; /* record indices: the pairs of smallest |margin| */
    int n_smallest;
    int64_t *highest, *lowest; /* record indices: extremes of score */
    int n_highest, n_lowest;
    int64_t *heatmap; /* record indices of the heatmap's prompts, in display order */
    int n_heatmap;
    json_t *heatmap_gates; /* [[gate...]...] aligned with heatmap */

    json_t *details; /* [{line, id, kind, ...}]: the embedded records */
    int64_t detail_cut; /* records whose detail was not embedded */
    int64_t text_cut;   /* texts shortened (or left out) in the embedded conversations */
    size_t text_bytes;  /* bytes of text embedded */
} armo_report;

/* Reads o->scores_path (and o->input_path) and fills *out (allocated; free
 * with armo_report_free).  -1 with a message naming the file and line on a
 * line that is not JSON, an input that does not match the scores, or I/O. */
int armo_report_build(const armo_report_opts *o, armo_report **out, armo_err *e);
void armo_report_free(armo_report *r);

/* ---- helpers of the report room (report_stats.c) ---- */

/* The histogram of v[0..n) over [min, max] in nbins bins; the box of v
 * (v is sorted in place). */
void armo_hist_fill(armo_hist *h, const double *v, int64_t n, int nbins);
void armo_box_fill(armo_box *b, double *v, int64_t n);
json_t *armo_hist_json(const armo_hist *h);
json_t *armo_box_json(const armo_box *b);

/* "line N (id X): message" -> "message" (the grouping key of errors). */
const char *armo_report_error_key(const char *msg);

/* ---- second pass (report_detail.c) ---- */
int armo_report_details(armo_report *r, const armo_report_opts *o, armo_err *e);

#endif
