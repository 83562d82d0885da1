// libcrypto's message digests (EVP): SHA-512/256 for Oasis bundle digests and manifest hashes.
#include <openssl/evp.h>
