"""Impact reports for programme funders (issue 5): aggregates per cooperative and period."""
