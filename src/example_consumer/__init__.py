"""An example of the partner's own code: app events in, the token broker for Buy with Prime calls."""
