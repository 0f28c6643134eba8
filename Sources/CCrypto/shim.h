// OpenSSL's libcrypto, for SHA-256 at hardware speed (SHA-NI / AVX2): model identities hash every
// byte of the weights.
#include <openssl/evp.h>
