"""The Flower app: ServerApp + PrismStrategy and ClientApp, calling the same client update and
server aggregation as the simulation."""
