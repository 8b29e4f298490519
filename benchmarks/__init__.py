"""Benchmarks of qharness against its peers; `python -m benchmarks` writes benchmarks/RESULTS.md.

Sections (each a module with `run(...) -> Section`): tomography (qiskit-experiments analysis), bell (end-to-end
Bell fidelity on Aer against qiskit-experiments' StateTomography experiment), qec (stim + pymatching and the Aer
path), capacities (closed forms and the 5 ms target), gate (false-alarm rate, power and sample efficiency of the
gate) and canary (the whole `qharness run --report` command).
"""
