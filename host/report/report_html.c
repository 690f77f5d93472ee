/* report_html.c — writes the report page: the numbers as escaped HTML
 * tables (readable without the script), the aggregates and the embedded
 * records as one JSON block, and the inline stylesheet and script
 * (report_page.css / report_page.js, compiled in by tools/embed_text.py)
 * that draw the charts as SVG.  Nothing is fetched at view time. */
#include "host/report/report_html.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "host/report/report_assets.h"
#include "host/report/report_summary.h"
#include "host/report/rewardbench.h"

static void put_esc(FILE *f, const char *s) {
    for (; s && *s; s++) {
        switch (*s) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&#39;", f); break;
        default: fputc(*s, f);
        }
    }
}

char *armo_html_escape(const char *s) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return NULL;
    put_esc(f, s);
    if (fclose(f)) {
        free(buf);
        return NULL;
    }
    return buf;
}

char *armo_json_for_script(const char *json) {
    size_t n = 0;
    for (const char *p = json; *p; p++) n++;
    char *out = malloc(n * 6 + 1), *o = out;
    if (!out) return NULL;
    for (const unsigned char *p = (const unsigned char *)json; *p; p++) {
        if (*p == '<' || *p == '>' || *p == '&') {
            o += sprintf(o, "\\u%04x", *p);
        } else if (p[0] == 0xE2 && p[1] == 0x80 && (p[2] == 0xA8 || p[2] == 0xA9)) {
            o += sprintf(o, "\\u%04x", p[2] == 0xA8 ? 0x2028 : 0x2029);
            p += 2;
        } else {
            *o++ = (char)*p;
        }
    }
    *o = 0;
    return out;
}

/* ---- helpers over the report ---- */

/* The embedded detail of record idx (details are in record order). */
static json_t *detail_for(const armo_report *r, int64_t idx) {
    size_t lo = 0, hi = json_array_size(r->details);
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        json_int_t i = json_integer_value(json_object_get(json_array_get(r->details, mid), "i"));
        if (i == idx) return json_array_get(r->details, mid);
        if (i < idx) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

static const char *id_of(const armo_report *r, int64_t idx) {
    const char *s = json_string_value(json_object_get(detail_for(r, idx), "id"));
    return s ? s : "(no id)";
}

/* v, but a value that rounds to zero at 2 decimals prints "0.00", not "-0.00" */
static double no_neg_zero(double v) { return v > -0.005 && v < 0.005 ? 0.0 : v; }

static double pct(int64_t k, int64_t n) { return n ? 100.0 * (double)k / (double)n : 0; }

static void card(FILE *f, const char *key, const char *label, const char *value) {
    fprintf(f, "<div class=\"card\"><div class=\"label\">");
    put_esc(f, label);
    fprintf(f, "</div><div class=\"value\" data-k=\"%s\">", key);
    put_esc(f, value);
    fprintf(f, "</div></div>\n");
}

static void card_num(FILE *f, const char *key, const char *label, const char *fmt, double v) {
    char b[64];
    snprintf(b, sizeof b, fmt, v);
    card(f, key, label, b);
}

static void chart_div(FILE *f, const char *id, const char *caption) {
    fprintf(f, "<figure class=\"chart\"><div id=\"%s\"></div><figcaption>", id);
    put_esc(f, caption);
    fprintf(f, "</figcaption></figure>\n");
}

/* ---- sections ---- */

static void write_summary(FILE *f, const armo_report *r) {
    fprintf(f, "<section id=\"summary\"><h2>Summary</h2>\n");
    if (r->records == 0)
        fprintf(f, "<p class=\"note\" id=\"empty-note\">This file holds no records: nothing was "
                   "scored, so there is nothing to show.</p>\n");
    else if (r->errors == r->records)
        fprintf(f, "<p class=\"note\" id=\"all-errors-note\">Every record of this file is an "
                   "error: no score to show. The messages are below.</p>\n");
    fprintf(f, "<div class=\"cards\">\n");
    card_num(f, "records", "records", "%.0f", (double)r->records);
    card_num(f, "errors", "errors", "%.0f", (double)r->errors);
    card_num(f, "responses", "responses scored", "%.0f", (double)r->responses);
    card_num(f, "tokens", "tokens", "%.0f", (double)r->tokens);
    if (r->responses) {
        card_num(f, "tokens-mean", "tokens per response", "%.1f",
                 (double)r->tokens / (double)r->responses);
        card_num(f, "score-mean", "mean score", "%.4f", r->score_box.mean);
        card_num(f, "score-median", "median score", "%.4f", r->score_box.median);
    }
    char kinds[160];
    snprintf(kinds, sizeof kinds, "%lld single, %lld pairs, %lld best-of-N",
             (long long)r->singles, (long long)r->pairs, (long long)r->bons);
    card(f, "kinds", "record kinds", kinds);
    fprintf(f, "</div>\n");
    if (r->responses)
        chart_div(f, "chart-score", "Score of every scored response (a pair counts both, a "
                                    "best-of-N record every response).");
    if (r->n_errs) {
        fprintf(f, "<h3>Errors by message</h3><table class=\"t\" id=\"errors\"><thead><tr>"
                   "<th>records</th><th>message</th><th>first line</th></tr></thead><tbody>\n");
        for (int i = 0; i < r->n_errs && i < 50; i++) {
            fprintf(f, "<tr><td class=\"n\" data-k=\"err-count\">%lld</td><td class=\"msg\">",
                    (long long)r->errs[i].count);
            put_esc(f, r->errs[i].msg);
            fprintf(f, "</td><td class=\"n\">%lld</td></tr>\n", (long long)r->errs[i].first_line);
        }
        fprintf(f, "</tbody></table>\n");
        if (r->n_errs > 50)
            fprintf(f, "<p class=\"note\">%d more distinct messages not listed (`armo report "
                       "--summary json` lists them all).</p>\n", r->n_errs - 50);
    }
    if (r->run_meta) {
        fprintf(f, "<h3>Run</h3><table class=\"t\" id=\"run-meta\"><tbody>\n");
        const char *k;
        json_t *v;
        json_object_foreach(r->run_meta, k, v) {
            char *s = json_is_string(v) ? NULL : json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
            fprintf(f, "<tr><th>");
            put_esc(f, k);
            fprintf(f, "</th><td>");
            put_esc(f, s ? s : json_string_value(v));
            fprintf(f, "</td></tr>\n");
            free(s);
        }
        fprintf(f, "</tbody></table>\n");
    }
    fprintf(f, "</section>\n");
}

static void write_objectives(FILE *f, const armo_report *r) {
    fprintf(f, "<section id=\"objectives\"><h2>Objectives</h2>\n");
    if (!r->n_obj) {
        fprintf(f, "<p class=\"note\">No objective rewards in these scores (a single-head "
                   "reward model, or no scored record).</p></section>\n");
        return;
    }
    fprintf(f, "<p>Over %lld scored responses. <em>Share</em>: the objective's Σ coefficient × "
               "reward over all responses, as a fraction of Σ |that| over the objectives (the "
               "score of a response is Σ coefficient × reward).</p>\n",
            (long long)(r->reward_box[0].n));
    fprintf(f, "<div class=\"row2\">\n");
    chart_div(f, "chart-boxes", "Reward distribution per objective: box = quartiles, line = "
                                "median, whiskers = min and max, dot = mean (reward units).");
    chart_div(f, "chart-share", "Each objective's share of the total score (Σ coefficient × "
                                "reward), percent; negative pulls scores down.");
    fprintf(f, "</div>\n");
    fprintf(f, "<table class=\"t\" id=\"objective-table\"><thead><tr><th>objective</th>"
               "<th>mean reward</th><th>mean gate</th><th>mean coefficient</th>"
               "<th>Σ coef × reward</th><th>share</th><th>prompts it dominates</th>"
               "</tr></thead><tbody>\n");
    for (int j = 0; j < r->n_obj; j++) {
        fprintf(f, "<tr><td>");
        put_esc(f, r->obj_names[j]);
        fprintf(f, "</td><td class=\"n\" data-k=\"mean-reward-%d\">%.4f</td>"
                   "<td class=\"n\" data-k=\"mean-gate-%d\">%.4f</td>"
                   "<td class=\"n\" data-k=\"mean-coef-%d\">%.4f</td>"
                   "<td class=\"n\">%.4f</td><td class=\"n\" data-k=\"share-%d\">%.2f%%</td>"
                   "<td class=\"n\">%lld</td></tr>\n",
                j, r->mean_reward[j], j, r->mean_gate[j], j, r->mean_coef[j], r->contrib_sum[j],
                j, no_neg_zero(100 * r->contrib_share[j]), (long long)r->dominant_count[j]);
    }
    fprintf(f, "</tbody></table>\n</section>\n");
}

static void write_gating(FILE *f, const armo_report *r) {
    fprintf(f, "<section id=\"gating\"><h2>Gating by prompt</h2>\n");
    if (!r->n_heatmap) {
        fprintf(f, "<p class=\"note\">No gating weights in these scores.</p></section>\n");
        return;
    }
    fprintf(f, "<p>%d of %lld prompts, spread evenly over the file, sorted by the objective of "
               "their largest gating weight and then by that weight, so that prompts gated "
               "alike stand together. A pair's or best-of-N's responses share one gate. Click a "
               "row for the record.</p>\n", r->n_heatmap, (long long)r->gated_prompts);
    fprintf(f, "<div class=\"row2\">\n");
    chart_div(f, "chart-heatmap", "Gating weight per prompt (rows) and objective (columns); "
                                  "darker = larger weight.");
    chart_div(f, "chart-dominant", "Prompts per dominant objective (the objective of the "
                                   "largest gating weight), over every prompt.");
    fprintf(f, "</div>\n");
    fprintf(f, "</section>\n");
}

static void record_row(FILE *f, const armo_report *r, int64_t idx, double value) {
    fprintf(f, "<tr><td><button class=\"rec\" data-i=\"%lld\">", (long long)idx);
    put_esc(f, id_of(r, idx));
    fprintf(f, "</button></td><td class=\"n\">%lld</td><td class=\"n\">", (long long)r->recs[idx].line);
    fprintf(f, "%.4f</td></tr>\n", value);
}

static void write_groups(FILE *f, const armo_report *r) {
    fprintf(f, "<h3>Preference rate by ");
    put_esc(f, r->group_field ? r->group_field : "subset / category");
    fprintf(f, "</h3><table class=\"t\" id=\"group-table\"><thead><tr><th>group</th>"
               "<th>pairs</th><th>chosen preferred</th><th>rate</th><th>RewardBench section</th>"
               "</tr></thead><tbody>\n");
    for (int g = 0; g < r->n_groups; g++) {
        const armo_report_group *x = &r->groups[g];
        fprintf(f, "<tr data-group=\"");
        put_esc(f, x->name);
        fprintf(f, "\"><td>");
        put_esc(f, x->name);
        fprintf(f, "</td><td class=\"n\">%lld</td><td class=\"n\">%lld</td>"
                   "<td class=\"n\" data-k=\"group-rate\">%.2f%%</td><td>%s</td></tr>\n",
                (long long)x->pairs, (long long)x->preferred, pct(x->preferred, x->pairs),
                x->rb_section >= 0 ? armo_rb_section_name(x->rb_section) : "");
    }
    fprintf(f, "</tbody></table>\n");
    chart_div(f, "chart-groups", "Chosen preferred (chosen scored strictly higher), percent of "
                                 "each group's pairs; dashed: 50 %.");
    if (!r->rb_present) return;
    fprintf(f, "<h3>RewardBench sections</h3><table class=\"t\" id=\"rewardbench\"><thead><tr>"
               "<th>section</th><th>score</th><th>pairs</th></tr></thead><tbody>\n");
    for (int i = 0; i < ARMO_REPORT_SECTIONS; i++) {
        fprintf(f, "<tr><td>%s</td>", armo_rb_section_name(i));
        if (r->rb_section[i] < 0)
            fprintf(f, "<td class=\"n\">&ndash;</td><td class=\"n\">0</td></tr>\n");
        else
            fprintf(f, "<td class=\"n\" data-k=\"rb-%d\">%.2f</td><td class=\"n\">%lld</td></tr>\n",
                    i, 100 * r->rb_section[i], (long long)r->rb_section_pairs[i]);
    }
    fprintf(f, "<tr><th>Score</th><td class=\"n\" data-k=\"rb-score\">%.2f</td><td></td></tr>"
               "</tbody></table>\n<p class=\"note\">Section score = each subset's accuracy "
               "(chosen scored strictly higher) weighted by its size in RewardBench's published "
               "EXAMPLE_COUNTS (allenai/reward-bench, rewardbench/constants.py; math-prm weighted "
               "984 to equal the code subsets); Score = mean of the sections present.</p>\n",
            100 * r->rb_score);
}

static void write_pairs(FILE *f, const armo_report *r) {
    fprintf(f, "<section id=\"pairs\"><h2>Pairs</h2>\n");
    if (!r->pairs) {
        fprintf(f, "<p class=\"note\">No pair records (chosen / rejected) in this file."
                   "</p></section>\n");
        return;
    }
    fprintf(f, "<div class=\"cards\">\n");
    card_num(f, "pairs", "pairs", "%.0f", (double)r->pairs);
    card_num(f, "pref-rate", "chosen preferred", "%.2f%%", pct(r->pairs_preferred, r->pairs));
    card_num(f, "margin-mean", "mean margin", "%.4f", r->margin_box.mean);
    card_num(f, "margin-median", "median margin", "%.4f", r->margin_box.median);
    fprintf(f, "</div>\n");
    chart_div(f, "chart-margin", "Margin = score(chosen) − score(rejected) per pair; right of "
                                 "zero the chosen response is preferred.");
    if (r->n_groups) write_groups(f, r);
    fprintf(f, "<h3>Smallest margins</h3><p>The %d pairs the model separates least; pick one "
               "for the waterfall of its objective terms.</p><table class=\"t\" id=\"smallest\">"
               "<thead><tr><th>id</th><th>line</th><th>margin</th></tr></thead><tbody>\n",
            r->n_smallest);
    for (int i = 0; i < r->n_smallest; i++)
        record_row(f, r, r->smallest[i], r->recs[r->smallest[i]].margin);
    fprintf(f, "</tbody></table>\n");
    if (r->n_obj)
        chart_div(f, "chart-waterfall", "Waterfall: each objective's term coefficient × reward "
                                        "(chosen) − coefficient × reward (rejected); the terms "
                                        "sum to the margin.");
    fprintf(f, "</section>\n");
}

static void write_bon(FILE *f, const armo_report *r) {
    fprintf(f, "<section id=\"bon\"><h2>Best-of-N</h2>\n");
    if (!r->bons) {
        fprintf(f, "<p class=\"note\">No best-of-N records (responses: [...]) in this file."
                   "</p></section>\n");
        return;
    }
    fprintf(f, "<div class=\"cards\">\n");
    card_num(f, "bons", "prompts", "%.0f", (double)r->bons);
    card_num(f, "bon-responses", "responses", "%.0f", (double)r->bon_responses);
    card_num(f, "spread-mean", "mean score spread", "%.4f", r->spread_box.mean);
    card_num(f, "spread-median", "median score spread", "%.4f", r->spread_box.median);
    fprintf(f, "</div>\n");
    fprintf(f, "<div class=\"row2\">\n");
    chart_div(f, "chart-spread", "Score spread per prompt: best − worst response's score.");
    if (r->n_obj && r->win_n)
        chart_div(f, "chart-profile", "Mean reward per objective of the winning response "
                                      "against the other responses of the same prompts.");
    fprintf(f, "</div>\n");
    fprintf(f, "</section>\n");
}

static void write_records(FILE *f, const armo_report *r) {
    fprintf(f, "<section id=\"records\"><h2>Records</h2>\n");
    fprintf(f, "<p>Search a record by its id (%zu of %lld records are in this page",
            json_array_size(r->details), (long long)r->n_recs);
    if (r->detail_cut)
        fprintf(f, ": <span data-k=\"detail-cut\">%lld</span> records were left out to keep the "
                   "page fast (the first %zu and every record listed here are kept; "
                   "--max-detail raises the cap)", (long long)r->detail_cut,
                json_array_size(r->details));
    if (r->text_cut)
        fprintf(f, "); <span data-k=\"text-cut\">%lld</span> texts were shortened to 4000 bytes "
                   "or, past 8 MB of text in the page, left out.</p>\n", (long long)r->text_cut);
    else
        fprintf(f, ").</p>\n");
    fprintf(f, "<div class=\"search\"><label for=\"rec-search\">id</label> <input "
               "id=\"rec-search\" list=\"rec-ids\" autocomplete=\"off\"> <button "
               "id=\"rec-go\">show</button> <span id=\"rec-msg\"></span></div>"
               "<datalist id=\"rec-ids\"></datalist>\n<div id=\"record-view\"></div>\n");
    if (r->n_highest) {
        fprintf(f, "<div class=\"two\"><div><h3>Highest scores</h3><table class=\"t\" "
                   "id=\"highest\"><thead><tr><th>id</th><th>line</th><th>score</th></tr>"
                   "</thead><tbody>\n");
        for (int i = 0; i < r->n_highest; i++)
            record_row(f, r, r->highest[i], r->recs[r->highest[i]].score);
        fprintf(f, "</tbody></table></div><div><h3>Lowest scores</h3><table class=\"t\" "
                   "id=\"lowest\"><thead><tr><th>id</th><th>line</th><th>score</th></tr>"
                   "</thead><tbody>\n");
        for (int i = 0; i < r->n_lowest; i++)
            record_row(f, r, r->lowest[i], r->recs[r->lowest[i]].score);
        fprintf(f, "</tbody></table></div></div>\n");
    }
    fprintf(f, "</section>\n");
}

/* The JSON block the script draws from. */
static json_t *page_data(const armo_report *r) {
    json_t *d = json_object(), *names = json_array(), *boxes = json_array(), *hists = json_array();
    json_t *share = json_array(), *dom = json_array(), *win = json_array(), *oth = json_array();
    for (int j = 0; j < r->n_obj; j++) {
        json_array_append_new(names, json_string(r->obj_names[j]));
        json_array_append_new(boxes, armo_box_json(&r->reward_box[j]));
        json_array_append_new(hists, armo_hist_json(&r->reward_hist[j]));
        json_array_append_new(share, json_real(r->contrib_share[j]));
        json_array_append_new(dom, json_integer(r->dominant_count[j]));
        json_array_append_new(win, json_real(r->win_reward[j]));
        json_array_append_new(oth, json_real(r->other_reward[j]));
    }
    json_t *hm = json_array(), *sm = json_array();
    for (int i = 0; i < r->n_heatmap; i++) json_array_append_new(hm, json_integer(r->heatmap[i]));
    for (int i = 0; i < r->n_smallest; i++) json_array_append_new(sm, json_integer(r->smallest[i]));
    json_object_set_new(d, "objectives", names);
    json_object_set_new(d, "rewardBox", boxes);
    json_object_set_new(d, "rewardHist", hists);
    json_object_set_new(d, "share", share);
    json_object_set_new(d, "dominant", dom);
    json_object_set_new(d, "winReward", win);
    json_object_set_new(d, "otherReward", oth);
    json_object_set_new(d, "scoreHist", armo_hist_json(&r->score_hist));
    json_object_set_new(d, "marginHist", armo_hist_json(&r->margin_hist));
    json_object_set_new(d, "spreadHist", armo_hist_json(&r->spread_hist));
    json_object_set_new(d, "heatmap", hm);
    json_object_set(d, "heatmapGates", r->heatmap_gates);
    json_object_set_new(d, "smallest", sm);
    json_object_set(d, "details", r->details);
    json_object_set_new(d, "summary", armo_report_summary_json(r));
    return d;
}

static void write_head(FILE *f, const char *title) {
    fprintf(f, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
               "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
               "<meta name=\"color-scheme\" content=\"light dark\">"
               "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
               "style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">"
               "<title>");
    put_esc(f, title);
    fprintf(f, "</title>\n<style>\n%s</style>\n</head>\n", armo_report_css);
}

static void write_page(FILE *f, const armo_report *r, const char *title, const char *data) {
    write_head(f, title);
    fprintf(f, "<body data-ready=\"0\">\n<header><h1>");
    put_esc(f, title);
    fprintf(f, "</h1><p class=\"sub\">scores: <code>");
    put_esc(f, r->scores_path);
    fprintf(f, "</code>");
    if (r->input_path) {
        fprintf(f, " &middot; records: <code>");
        put_esc(f, r->input_path);
        fprintf(f, "</code>");
    }
    time_t now = time(NULL);
    char when[64] = "";
    strftime(when, sizeof when, "%Y-%m-%d %H:%M UTC", gmtime(&now));
    fprintf(f, " &middot; made by armo report, %s</p>\n<nav><a href=\"#summary\">Summary</a> "
               "<a href=\"#objectives\">Objectives</a> <a href=\"#gating\">Gating</a> "
               "<a href=\"#pairs\">Pairs</a> <a href=\"#bon\">Best-of-N</a> "
               "<a href=\"#records\">Records</a></nav></header>\n<main>\n", when);
    write_summary(f, r);
    write_objectives(f, r);
    write_gating(f, r);
    write_pairs(f, r);
    write_bon(f, r);
    write_records(f, r);
    fprintf(f, "</main>\n<noscript><p class=\"note\">The charts need JavaScript; the tables "
               "above do not.</p></noscript>\n<script type=\"application/json\" "
               "id=\"armo-data\">%s</script>\n<script>\n%s</script>\n</body></html>\n",
            data, armo_report_js);
}

int armo_report_write_html(const armo_report *r, const armo_report_opts *o, const char *path,
                           armo_err *e) {
    char title_buf[512];
    const char *title = o->title;
    if (!title) {
        snprintf(title_buf, sizeof title_buf, "armo report: %s", r->scores_path);
        title = title_buf;
    }
    json_t *d = page_data(r);
    char *json = d ? json_dumps(d, JSON_COMPACT | JSON_REAL_PRECISION(6)) : NULL;
    char *safe = json ? armo_json_for_script(json) : NULL;
    json_decref(d);
    free(json);
    if (!safe) return armo_err_set(e, "out of memory building the page data");
    FILE *f = fopen(path, "wb");
    if (!f) {
        free(safe);
        return armo_err_set(e, "cannot create %s: %s", path, strerror(errno));
    }
    write_page(f, r, title, safe);
    free(safe);
    int bad = ferror(f);
    if (fclose(f) || bad) return armo_err_set(e, "writing %s failed: %s", path, strerror(errno));
    return 0;
}
