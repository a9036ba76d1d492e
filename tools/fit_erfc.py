"""Fits R(t) for Wafer's exact GELU (ai.wafer.tensor.Gelu.tail): erfc(a) = t exp(-a^2) R(t), t = 1 / (1 + a/2).

R is a degree-9 polynomial in t, fitted to erfc(a) exp(a^2) / t over a in [0, 20 / sqrt 2] (|x| <= 20, Gelu's clamp) by
relative error: weighted least squares on Chebyshev nodes, reweighted toward the largest errors (a Lawson-style
iteration toward minimax). Prints the float32 coefficients R[0] .. R[9] and the worst relative error of the fit in
double and of the polynomial evaluated in float32 by Horner (as the lanes evaluate it).
Run: python3 tools/fit_erfc.py   (needs numpy)
"""
import math

import numpy as np

DEG = 9
T_MIN = 1 / (1 + (20 / math.sqrt(2)) * 0.5)


def r_true(t):
    a = 2 * (1 / t - 1)
    return math.erfc(a) * math.exp(a * a) / t


n = 4000
ts = (T_MIN + 1) / 2 + (1 - T_MIN) / 2 * np.cos(np.pi * (np.arange(n) + 0.5) / n)
r = np.array([r_true(t) for t in ts])
v = np.vander(ts, DEG + 1, increasing=True)
weights = np.ones(n)
for _ in range(30):
    c, *_ = np.linalg.lstsq(v * (weights / r)[:, None], weights, rcond=None)
    err = (v @ c - r) / r
    weights = weights * (np.abs(err) / np.abs(err).max() + 1e-3) ** 0.5
    weights /= weights.max()

c32 = c.astype(np.float32)
check = np.linspace(T_MIN, 1, 4001)
want = np.array([r_true(t) for t in check])
got = np.zeros(check.size, dtype=np.float32)
t32 = check.astype(np.float32)
for ci in c32[::-1]:
    got = (got * t32 + ci).astype(np.float32)
print("R =", ", ".join("%rf" % float(x) for x in c32))
print("worst relative error: fit %.2g, float32 evaluation %.2g" % (np.abs(err).max(), (np.abs(got - want) / want).max()))
