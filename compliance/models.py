# KYC cases, watch lists and screening arrive with the compliance issue; roles
# and their conflicts live in compliance/roles.py.
