"""Optuna studies over a trained walk-forward run's stored signals (see study.py)."""

import warnings

import optuna

# Heartbeats, stale-trial retries and the Wilcoxon pruner are what make a shared study safe;
# Optuna 5 still labels them experimental and warns on every use, which would drown the output.
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
