"""A simulated production teacher: an imperfect 0-1 AI score derived from the ground truth.

The article's teacher is a private production model. This one is shaped like it (about 75 % of
scores below 0.1, about 11 % at or above 0.5) and is wrong the ways such a model is wrong:
- real images mostly score near 0, some land in a hesitant band (0.1-0.5), and a few are
  confident false positives;
- generated images mostly score high, but the teacher misses some, more often for generators it
  knows less well (recall per family below), some of them confidently.
"""

import numpy as np

TEACHER_RECALL = {"text_to_image": 0.85, "image_edit": 0.8, "realsr": 0.75, "real_cugan": 0.75, "waifu2x": 0.7,
                  "real_esrgan": 0.65}
REAL_HESITANT_SHARE = 0.118
REAL_CONFIDENT_MISTAKE_SHARE = 0.012
MISSED_CONFIDENT_SHARE = 0.4


def teacher_scores(is_ai: np.ndarray, family: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    scores = np.empty(len(is_ai), dtype=np.float64)
    for i, (ai, fam) in enumerate(zip(is_ai, family)):
        u = rng.random()
        if not ai:
            if u < REAL_CONFIDENT_MISTAKE_SHARE:
                scores[i] = rng.uniform(0.6, 0.95)
            elif u < REAL_CONFIDENT_MISTAKE_SHARE + REAL_HESITANT_SHARE:
                scores[i] = rng.uniform(0.1, 0.5)
            else:
                scores[i] = rng.beta(1.0, 40.0)
        elif u < TEACHER_RECALL[fam]:
            scores[i] = 0.5 + 0.5 * rng.beta(5.0, 2.0)
        elif rng.random() < MISSED_CONFIDENT_SHARE:
            scores[i] = rng.beta(1.0, 30.0)
        else:
            scores[i] = rng.uniform(0.1, 0.5)
    return scores.round(4)
