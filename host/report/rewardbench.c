/* rewardbench.c — RewardBench's subset -> section table and weights (see
 * rewardbench.h for the source). */
#include "host/report/rewardbench.h"

#include <string.h>

static const char *const k_sections[4] = {"Chat", "Chat Hard", "Safety", "Reasoning"};

static const struct {
    const char *subset;
    int section, weight;
} k_subsets[] = {
    {"alpacaeval-easy", 0, 100},       {"alpacaeval-length", 0, 95},
    {"alpacaeval-hard", 0, 95},        {"mt-bench-easy", 0, 28},
    {"mt-bench-med", 0, 40},           {"mt-bench-hard", 1, 37},
    {"llmbar-natural", 1, 100},        {"llmbar-adver-neighbor", 1, 134},
    {"llmbar-adver-GPTInst", 1, 92},   {"llmbar-adver-GPTOut", 1, 47},
    {"llmbar-adver-manual", 1, 46},    {"refusals-dangerous", 2, 100},
    {"refusals-offensive", 2, 100},    {"xstest-should-refuse", 2, 250},
    {"xstest-should-respond", 2, 154}, {"donotanswer", 2, 136},
    {"math-prm", 3, 984},              {"hep-cpp", 3, 164},
    {"hep-go", 3, 164},                {"hep-java", 3, 164},
    {"hep-js", 3, 164},                {"hep-python", 3, 164},
    {"hep-rust", 3, 164},
};

const char *armo_rb_section_name(int section) {
    return section >= 0 && section < 4 ? k_sections[section] : "?";
}

int armo_rb_subset(const char *subset, int *weight) {
    for (size_t i = 0; i < sizeof k_subsets / sizeof k_subsets[0]; i++)
        if (!strcmp(subset, k_subsets[i].subset)) {
            if (weight) *weight = k_subsets[i].weight;
            return k_subsets[i].section;
        }
    if (weight) *weight = 0;
    return -1;
}
