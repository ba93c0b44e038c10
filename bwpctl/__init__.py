"""bwpctl: the operator's command line for a deployed (or local) Buy with Prime integration."""
