"""Labeling logic: task views, queues, agreement. Reads and writes through workbench.store only."""
