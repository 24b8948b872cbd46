"""The daemon (``spamclf serve``) and its client (``client``): kept free of imports here, so that the
client starts without the daemon's web stack."""
