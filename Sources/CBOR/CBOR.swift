// Module `CBOR`: see README.md for its role.
