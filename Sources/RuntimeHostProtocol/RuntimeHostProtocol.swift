// Module `RuntimeHostProtocol`: see README.md for its role.
