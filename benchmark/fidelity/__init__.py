"""Fidelity: tedbench's models trained side by side with their reference implementations on identical data.

verify.py      `tedbench verify`: both sides per seed (resumable), the side-by-side report and its verdict
reference.py   the reference side: stock RecBole 1.2.1 models or an official RecBole-based checkout (TedRec)
transplant.py  trained weights moved between tedbench's TedRec and the official one, each side evaluating
standalone.py  official codebases with their own data format and trainer (FMLP-Rec, DLFS-Rec), as subprocesses
difsr.py       the official DIF-SR code (a patched RecBole 1.0.0 in its own environment), as a subprocess
"""
