"""Float64 reference values of exact GELU (erf form) and gelu_new (tanh form) and their derivatives.

Writes wafer-core/src/test/resources/fixtures/gelu/reference.csv: x (a float32 value), Phi(x), gelu(x), gelu'(x),
gelu_new(x), gelu_new'(x). Phi comes from Python's math.erfc (float64, no cancellation in the lower tail);
gelu_new from its definition 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) evaluated as x * sigmoid(2u),
its derivative by the product rule. Run from the repository root: python3 tools/make_gelu_reference.py
"""
import math
import struct


def f32(v):
    return struct.unpack("f", struct.pack("f", v))[0]


xs = sorted({f32(-12 + i * 0.0743) for i in range(324)} | {f32(v) for v in (0.0, 1e-6, -1e-6, 0.5, -0.5, 1, -1, 3, -3, -0.7518, 6, -6, 9, -9, 12, -12)})
K = math.sqrt(2 / math.pi)
with open("wafer-core/src/test/resources/fixtures/gelu/reference.csv", "w") as out:
    out.write("x,phi,gelu,dgelu,gelu_new,dgelu_new\n")
    for x in xs:
        phi = 0.5 * math.erfc(-x / math.sqrt(2))
        pdf = math.exp(-x * x / 2) / math.sqrt(2 * math.pi)
        u = K * (x + 0.044715 * x ** 3)
        s = 1 / (1 + math.exp(-2 * u))  # (1 + tanh u) / 2
        ds = 2 * s * (1 - s) * K * (1 + 3 * 0.044715 * x * x)  # d s / dx
        out.write("%r,%r,%r,%r,%r,%r\n" % (x, phi, x * phi, phi + x * pdf, x * s, s + x * ds))
