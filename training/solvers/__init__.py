"""Differentiable solvers used inside training losses (no learnable parameters)."""
