"""People in the loop: their verdicts on images (verdicts.py), the regression gate on the images they
settled (regression.py), a challenger's decisions on the feed against the champion's (shadow.py), and
the review page (page.py). Plain pandas/numpy/Starlette: no Dagster, no torch."""
