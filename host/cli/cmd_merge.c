/* cmd_merge.c — `armo merge`: the part files that the ranks of a split run
 * wrote (armo score under srun / mpirun / a job array, or --rank / --world)
 * back into one output in input order, checked for completeness
 * (host/dist/merge.h). */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "host/cli/commands.h"
#include "host/dist/merge.h"
#include "host/dist/shard.h"

static void usage(FILE *f) {
    fprintf(f,
        "usage: armo merge --output OUT [--input IN] [--remove-parts] [--quiet] [PART ...]\n\n"
        "Joins the part files OUT.part-RRRRR-of-WWWWW that the W ranks of `armo score\n"
        "--output OUT` wrote (rank R scored input records R, R+W, R+2W, ...) into OUT, in\n"
        "input order: byte for byte what one `armo score --output OUT` writes.\n"
        "Without PART arguments the parts are found beside OUT.\n\n"
        "Options:\n"
        "  -o, --output OUT   the merged file (written under a temporary name, synced,\n"
        "                     then renamed over OUT: never half-written)\n"
        "  -i, --input IN     the input the ranks scored: every record must have its line,\n"
        "                     with its \"id\" (recommended: without it, ranks that all\n"
        "                     stopped exactly one record short of the end look complete)\n"
        "      --remove-parts delete the parts once OUT is written\n"
        "  -q, --quiet        no summary on stderr\n"
        "  -h, --help         this text\n\n"
        "Refused (exit 2, OUT untouched), naming the part, its line and the record: a\n"
        "missing rank's part, parts of two world sizes, a part still being written (its\n"
        "rank running), a torn or non-JSON line, a rank that stopped early (rerun that\n"
        "rank with --resume), lines whose \"id\" is not the input record's, an OUT that\n"
        "an armo score is writing (its lock).\n"
        "Exit status, as one armo score over the whole input: 0 merged, every record\n"
        "scored; 1 merged, some records failed (their \"error\" lines); 2 not merged.\n");
}

int cmd_merge(int argc, char **argv) {
    static const struct option opts[] = {
        {"output", required_argument, NULL, 'o'}, {"input", required_argument, NULL, 'i'},
        {"remove-parts", no_argument, NULL, 'r'}, {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0}};
    armo_merge_opts mo = {0};
    int quiet = 0, remove_parts = 0, c;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "+o:i:qh", opts, NULL)) != -1) {
        switch (c) {
        case 'o': mo.out = optarg; break;
        case 'i': mo.input = optarg; break;
        case 'r': remove_parts = 1; break;
        case 'q': quiet = 1; break;
        case 'h': usage(stdout); return 0;
        default:
            fprintf(stderr, "armo merge: unknown option or missing value: '%s'\n\n",
                    argv[optind - 1]);
            usage(stderr);
            return 2;
        }
    }
    if (!mo.out) {
        fprintf(stderr, "armo merge: --output OUT is required\n\n");
        usage(stderr);
        return 2;
    }
    if (optind < argc) {
        mo.parts = (const char *const *)(argv + optind);
        mo.nparts = argc - optind;
    }
    armo_merge_stats st;
    armo_err e;
    if (armo_merge(&mo, &st, &e)) {
        fprintf(stderr, "armo merge: %s\n", e.msg);
        return 2;
    }
    if (!quiet)
        fprintf(stderr, "armo merge: %s: %lld records from %d parts%s (%lld of them errors)\n",
                mo.out, (long long)st.records, st.world,
                mo.input ? ", each matched to its input record" : "", (long long)st.errors);
    if (remove_parts) {
        int rc = 0;
        char name[4096];
        for (int r = 0; r < st.world; r++) {
            const char *p = name;
            if (mo.parts) p = mo.parts[r];
            else if (armo_part_name(mo.out, r, st.world, name, sizeof name, &e)) continue;
            if (unlink(p) != 0) {
                perror(p);
                rc = 2;
            }
        }
        if (rc) return rc;
    }
    return st.errors ? 1 : 0;
}
