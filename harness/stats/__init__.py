"""Statistical primitives of the gate, blind to the domain: numpy, scipy and the standard library only.

- `sequential`: Lan–DeMets alpha spending and exact group-sequential boundaries for one-sided tests.
- `multiplicity`: Holm, graphical (Bretz et al.) and gatekeeping procedures, Westfall–Young max-T,
  and graphical procedures over group-sequential tests (Maurer & Bretz).
- `random_effects`: between-session variance (DerSimonian–Laird, REML) and a test of a new session against
  the pooled mean.
- `paired`: interleaved ABBA blocks whose paired differences cancel a linear drift.
- `exact`: exact binomial tests of failure rates, valid at zero failures.
"""
