"""faust agents: thin loops that decode, call the core, and await one batched sink write."""
