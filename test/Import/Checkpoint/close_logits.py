"""Compares two logits files (.npy) of builds that differ in rounding only:
prints the largest difference as a share of the largest logit and whether
the argmax of each row agrees; exits 1 past the given share."""

import sys

import numpy as np

a, b, limit = np.load(sys.argv[1]), np.load(sys.argv[2]), float(sys.argv[3])
share = float(np.abs(a - b).max() / np.abs(b).max())
same = bool((a.reshape(-1, a.shape[-1]).argmax(-1) ==
             b.reshape(-1, b.shape[-1]).argmax(-1)).all())
print(f"largest difference {'within' if share <= limit else 'past'} "
      f"{limit} of the largest logit; argmax {'agrees' if same else 'differs'}")
sys.exit(0 if share <= limit else 1)
