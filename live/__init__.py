"""The live side: settings and secrets, the TradingNode (Polygon data + Alpaca execution +
SignalActor + EnsembleStrategy), the journal of what happened, and the offline rehearsal."""
