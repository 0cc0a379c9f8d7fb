"""Benchmark evaluation: adapters, answer matching, judge, resumable answer logs, results; graders are in rewards/."""
