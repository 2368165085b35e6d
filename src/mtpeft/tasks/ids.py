"""The ids of the study's six tasks (a light module: importing it loads nothing else)."""

STUDY_TASKS = (
    "semeval2014t7",
    "semeval2015t14",
    "semeval2016t12",
    "semeval2017t3",
    "semeval2021t6_level1",
    "semeval2021t6_level2",
)
