/* report_summary.c — the report's numbers for scripts and terminals:
 * `armo report --summary json` prints armo_report_summary_json(), `--summary
 * text` armo_report_summary_text(); the HTML page embeds the same JSON. */
#include "host/report/report_summary.h"

#include <stdio.h>

#include "host/report/rewardbench.h"

static double rate(int64_t k, int64_t n) { return n ? (double)k / (double)n : 0; }

static json_t *groups_json(const armo_report *r) {
    json_t *a = json_array();
    for (int g = 0; g < r->n_groups; g++) {
        const armo_report_group *x = &r->groups[g];
        json_array_append_new(
            a, json_pack("{s:s,s:I,s:I,s:f,s:s?}", "name", x->name, "pairs", (json_int_t)x->pairs,
                         "preferred", (json_int_t)x->preferred, "rate",
                         rate(x->preferred, x->pairs), "rewardbench_section",
                         x->rb_section >= 0 ? armo_rb_section_name(x->rb_section) : NULL));
    }
    return a;
}

static json_t *rewardbench_json(const armo_report *r) {
    if (!r->rb_present) return json_null();
    json_t *s = json_object(), *n = json_object();
    for (int i = 0; i < ARMO_REPORT_SECTIONS; i++) {
        const char *name = armo_rb_section_name(i);
        json_object_set_new(s, name, r->rb_section[i] < 0 ? json_null()
                                                           : json_real(100 * r->rb_section[i]));
        json_object_set_new(n, name, json_integer(r->rb_section_pairs[i]));
    }
    return json_pack("{s:o,s:o,s:o,s:s}", "sections", s, "pairs", n, "score",
                     r->rb_score < 0 ? json_null() : json_real(100 * r->rb_score), "weighting",
                     "allenai/reward-bench rewardbench/constants.py EXAMPLE_COUNTS (subset "
                     "accuracy weighted by subset size, math-prm 984); score = mean of the "
                     "sections present; a pair is correct when chosen > rejected");
}

static json_t *objectives_json(const armo_report *r) {
    json_t *a = json_array();
    for (int j = 0; j < r->n_obj; j++)
        json_array_append_new(
            a, json_pack("{s:s,s:f,s:f,s:f,s:f,s:f,s:I}", "name", r->obj_names[j], "mean_reward",
                         r->mean_reward[j], "mean_gate", r->mean_gate[j], "mean_coefficient",
                         r->mean_coef[j], "contribution", r->contrib_sum[j], "share",
                         r->contrib_share[j], "dominant_prompts",
                         (json_int_t)r->dominant_count[j]));
    return a;
}

static json_t *errors_json(const armo_report *r) {
    json_t *a = json_array();
    for (int i = 0; i < r->n_errs; i++)
        json_array_append_new(a, json_pack("{s:s,s:I,s:I}", "message", r->errs[i].msg, "count",
                                           (json_int_t)r->errs[i].count, "first_line",
                                           (json_int_t)r->errs[i].first_line));
    return a;
}

json_t *armo_report_summary_json(const armo_report *r) {
    json_t *o = json_object();
    json_object_set_new(o, "scores", json_string(r->scores_path));
    json_object_set_new(o, "input", r->input_path ? json_string(r->input_path) : json_null());
    json_object_set_new(o, "records", json_integer(r->records));
    json_object_set_new(o, "singles", json_integer(r->singles));
    json_object_set_new(o, "pairs", json_integer(r->pairs));
    json_object_set_new(o, "best_of_n", json_integer(r->bons));
    json_object_set_new(o, "errors", json_integer(r->errors));
    json_object_set_new(o, "responses", json_integer(r->responses));
    json_object_set_new(o, "tokens", json_integer(r->tokens));
    json_object_set_new(o, "errors_by_message", errors_json(r));
    json_object_set_new(o, "score", armo_box_json(&r->score_box));
    json_object_set_new(o, "preference",
                        json_pack("{s:I,s:f,s:s?,s:o,s:o}", "preferred",
                                  (json_int_t)r->pairs_preferred, "rate",
                                  rate(r->pairs_preferred, r->pairs), "group_field",
                                  r->group_field, "groups", groups_json(r), "margin",
                                  armo_box_json(&r->margin_box)));
    json_object_set_new(o, "rewardbench", rewardbench_json(r));
    json_object_set_new(o, "spread", armo_box_json(&r->spread_box));
    json_object_set_new(o, "objectives", objectives_json(r));
    if (r->run_meta) json_object_set(o, "run", r->run_meta);
    return o;
}

static void print_rewardbench(const armo_report *r, FILE *f) {
    fprintf(f, "RewardBench sections (subset accuracy weighted as allenai/reward-bench's "
               "EXAMPLE_COUNTS):\n");
    for (int i = 0; i < ARMO_REPORT_SECTIONS; i++) {
        if (r->rb_section[i] < 0)
            fprintf(f, "  %-10s      -  (no subset of it)\n", armo_rb_section_name(i));
        else
            fprintf(f, "  %-10s %6.2f  (%lld pairs)\n", armo_rb_section_name(i),
                    100 * r->rb_section[i], (long long)r->rb_section_pairs[i]);
    }
    fprintf(f, "  %-10s %6.2f  (mean of the sections present)\n", "Score", 100 * r->rb_score);
}

int armo_report_summary_text(const armo_report *r, FILE *f) {
    fprintf(f, "%s: %lld records (%lld single, %lld pairs, %lld best-of-N), %lld errors\n",
            r->scores_path, (long long)r->records, (long long)r->singles, (long long)r->pairs,
            (long long)r->bons, (long long)r->errors);
    if (r->responses)
        fprintf(f, "responses scored: %lld, tokens %lld (mean %.1f); score mean %.4f, median "
                   "%.4f, range [%.4f, %.4f]\n", (long long)r->responses, (long long)r->tokens,
                rate(r->tokens, r->responses), r->score_box.mean, r->score_box.median,
                r->score_box.min, r->score_box.max);
    for (int i = 0; i < r->n_errs && i < 10; i++)
        fprintf(f, "  error x%lld: %s\n", (long long)r->errs[i].count, r->errs[i].msg);
    if (r->n_errs > 10) fprintf(f, "  ... and %d more error messages\n", r->n_errs - 10);
    if (r->pairs)
        fprintf(f, "pairs: %lld, chosen preferred in %lld (%.2f%%), margin mean %.4f, median "
                   "%.4f\n", (long long)r->pairs, (long long)r->pairs_preferred,
                100 * rate(r->pairs_preferred, r->pairs), r->margin_box.mean,
                r->margin_box.median);
    if (r->n_groups) {
        fprintf(f, "preference rate by %s:\n", r->group_field ? r->group_field : "subset/category");
        for (int g = 0; g < r->n_groups; g++)
            fprintf(f, "  %-28s %6.2f%%  (%lld of %lld)\n", r->groups[g].name,
                    100 * rate(r->groups[g].preferred, r->groups[g].pairs),
                    (long long)r->groups[g].preferred, (long long)r->groups[g].pairs);
    }
    if (r->rb_present) print_rewardbench(r, f);
    if (r->bons)
        fprintf(f, "best-of-N: %lld prompts, %lld responses, score spread mean %.4f, median "
                   "%.4f\n", (long long)r->bons, (long long)r->bon_responses, r->spread_box.mean,
                r->spread_box.median);
    return ferror(f) ? -1 : 0;
}
