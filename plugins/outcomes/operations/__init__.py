"""Operating the warehouse: alerts and their channels, retention of what is kept on disk, the
status of everything, and the delivery ledger as people read it."""
