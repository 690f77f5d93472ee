/* rewardbench.h — RewardBench's sections and their published weighting.
 *
 * RewardBench (allenai/reward-bench, rewardbench/constants.py at commit
 * a32e272b3e01, and calculate_scores_per_section in rewardbench/utils.py)
 * groups its 23 subsets into four sections: Chat, Chat Hard, Safety and
 * Reasoning.  A section's score is the accuracy of each of its subsets
 * weighted by that subset's EXAMPLE_COUNTS entry (its size; math-prm counts
 * 984, not its 447 pairs, "upweighting to be equal to code"); only the
 * subsets present are weighted.  The overall score is the mean of the
 * sections (the leaderboard since prior sets were dropped).  A pair counts
 * as correct when the chosen response scores strictly higher than the
 * rejected one, as RewardBench's run_rm.py counts it. */
#ifndef ARMO_REWARDBENCH_H
#define ARMO_REWARDBENCH_H

/* "Chat", "Chat Hard", "Safety", "Reasoning" for 0..3. */
const char *armo_rb_section_name(int section);

/* The section of a subset name, or -1 when it is not a RewardBench subset;
 * *weight receives its EXAMPLE_COUNTS weight. */
int armo_rb_subset(const char *subset, int *weight);

#endif
