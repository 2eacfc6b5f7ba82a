"""The engine's lowest layer, shared by every stage: accounting (counts, drops, rejects), run
tables (Parquet reading and writing), the stage contract and keyed grouping. Nothing here
imports a stage."""
