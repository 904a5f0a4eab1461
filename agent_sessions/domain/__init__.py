"""The pure model: records, enums, errors and aggregates. No I/O, nothing of ours."""
