/* cmd_report.c — `armo report`: an `armo score` output file (and, with
 * --input, the records it scored) to one self-contained HTML page, and/or
 * its summary as text or JSON (host/report/). */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/cli/cli_args.h"
#include "host/cli/commands.h"
#include "host/report/report_data.h"
#include "host/report/report_html.h"
#include "host/report/report_summary.h"

static void usage(FILE *f) {
    fprintf(f,
        "usage: armo report SCORES.jsonl [options]\n\n"
        "Makes one self-contained HTML page (no network access when viewed: inline style,\n"
        "script and SVG charts) from the output of `armo score`: records, errors by\n"
        "message, tokens, the score distribution; per objective the reward distribution,\n"
        "mean gating weight and coefficient and share of the total score; a heatmap of\n"
        "prompts' gating weights; for pairs the margin histogram, the preference rate\n"
        "overall and per group (RewardBench section scores when the groups are its\n"
        "subsets), the smallest margins and a waterfall of each pair's objective terms;\n"
        "for best-of-N the score spread and the winner's objective profile; and any\n"
        "embedded record by id, with its conversation when --input is given.\n\n"
        "Options:\n"
        "  -o, --output FILE       the page (default report.html; with --summary, only\n"
        "                          when -o is given)\n"
        "  --input FILE            the JSONL records that were scored (same order): shows\n"
        "                          conversations and reads the grouping field\n"
        "  --title TEXT            the page's title (default \"armo report: SCORES\")\n"
        "  --group-by FIELD        the records' field that groups pairs (default: subset,\n"
        "                          else category)\n"
        "  --summary[=text|json]   print the summary on standard output (default text);\n"
        "                          also --summary json\n"
        "  --max-detail N          records embedded in full, beyond those the page lists\n"
        "                          (default 500; 0: only those)\n"
        "  --heatmap-rows N        prompts in the gating heatmap (default 48)\n"
        "  -h, --help              this text\n\n"
        "Exit status: 0 done, 1 the files could not be read or written, 2 bad arguments.\n");
}

typedef struct {
    armo_report_opts o;
    const char *out_path;
    int summary; /* 0 none, 1 text, 2 json */
} report_args;

static int summary_kind(const char *v) {
    if (!v || !strcmp(v, "text")) return 1;
    if (!strcmp(v, "json")) return 2;
    fprintf(stderr, "armo report: --summary expects text or json, got '%s'\n", v);
    return -1;
}

/* Fills a; returns 0, 1 when --help was printed, -1 on a bad argument. */
static int parse_args(int argc, char **argv, report_args *a) {
    enum { OPT_INPUT = 256, OPT_TITLE, OPT_GROUP, OPT_SUMMARY, OPT_DETAIL, OPT_HEATMAP };
    static const struct option longs[] = {
        {"output", required_argument, NULL, 'o'},    {"input", required_argument, NULL, OPT_INPUT},
        {"title", required_argument, NULL, OPT_TITLE}, {"group-by", required_argument, NULL, OPT_GROUP},
        {"summary", optional_argument, NULL, OPT_SUMMARY},
        {"max-detail", required_argument, NULL, OPT_DETAIL},
        {"heatmap-rows", required_argument, NULL, OPT_HEATMAP},
        {"help", no_argument, NULL, 'h'},            {NULL, 0, NULL, 0}};
    long n;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":o:h", longs, NULL)) != -1) {
        switch (c) {
        case 'o': a->out_path = optarg; break;
        case OPT_INPUT: a->o.input_path = optarg; break;
        case OPT_TITLE: a->o.title = optarg; break;
        case OPT_GROUP: a->o.group_by = optarg; break;
        case OPT_SUMMARY: {
            const char *v = optarg;
            if (!v && optind < argc && (!strcmp(argv[optind], "text") || !strcmp(argv[optind], "json")))
                v = argv[optind++]; /* --summary json */
            if ((a->summary = summary_kind(v)) < 0) return -1;
            break;
        }
        case OPT_DETAIL:
            if (armo_parse_long("report", "--max-detail", optarg, 0, INT_MAX, &n)) return -1;
            a->o.max_detail = (int)n;
            break;
        case OPT_HEATMAP:
            if (armo_parse_long("report", "--heatmap-rows", optarg, 0, 10000, &n)) return -1;
            a->o.heatmap_rows = (int)n;
            break;
        case 'h': usage(stdout); return 1;
        case ':':
            fprintf(stderr, "armo report: %s needs a value\n\n", argv[optind - 1]);
            usage(stderr);
            return -1;
        default:
            fprintf(stderr, "armo report: unknown option '%s'\n\n", argv[optind - 1]);
            usage(stderr);
            return -1;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, "armo report: %s\n\n", optind >= argc ? "the scores file (SCORES.jsonl) "
                                                                "is required"
                                                              : "one scores file, please");
        usage(stderr);
        return -1;
    }
    a->o.scores_path = argv[optind];
    if (!a->out_path && !a->summary) a->out_path = "report.html";
    if (a->out_path && (!strcmp(a->out_path, a->o.scores_path) ||
                        (a->o.input_path && !strcmp(a->out_path, a->o.input_path)))) {
        fprintf(stderr, "armo report: -o %s would overwrite the scores or records it reads\n",
                a->out_path);
        return -1;
    }
    return 0;
}

int cmd_report(int argc, char **argv) {
    report_args a = {.out_path = NULL};
    armo_report_opts_default(&a.o);
    int pa = parse_args(argc, argv, &a);
    if (pa) return pa > 0 ? 0 : 2;
    armo_err e;
    armo_report *r;
    if (armo_report_build(&a.o, &r, &e)) {
        fprintf(stderr, "armo report: %s\n", e.msg);
        return 1;
    }
    int rc = 0;
    if (a.out_path && armo_report_write_html(r, &a.o, a.out_path, &e)) {
        fprintf(stderr, "armo report: %s\n", e.msg);
        rc = 1;
    }
    if (a.summary == 1 && armo_report_summary_text(r, stdout)) rc = 1;
    if (a.summary == 2) {
        json_t *j = armo_report_summary_json(r);
        char *s = j ? json_dumps(j, JSON_INDENT(2) | JSON_REAL_PRECISION(10)) : NULL;
        if (!s || printf("%s\n", s) < 0) rc = 1;
        free(s);
        json_decref(j);
    }
    if (fflush(stdout)) rc = 1;
    armo_report_free(r);
    return rc;
}
