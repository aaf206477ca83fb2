// OpenSSL keeps one error queue per thread, and SSL_get_error() reads it:
// "the current thread's error queue must be empty before the TLS/SSL I/O
// operation is attempted, or SSL_get_error() will not work reliably"
// (OpenSSL's SSL_get_error(3)). libcaf_openssl 0.17.6 never empties it: it
// drains the queue only to log at INFO level, which Debian's build compiles
// out. All of CAF's TLS connections run on its one multiplexer thread, so a
// single failed handshake (anyone who reaches the cluster port without the
// secret) leaves an error there, and the next healthy read on another
// member's connection is then reported as SSL_ERROR_SSL and that connection
// is dropped: members flapped every time a stranger knocked.
//
// The fix CAF would need is one ERR_clear_error() before each I/O call.
// This file supplies it without patching the library: the executable
// defines SSL_read, SSL_write, SSL_accept and SSL_connect, which the dynamic
// linker binds for every library of the process (the executable comes
// first in symbol lookup), and each clears the calling thread's queue and
// calls OpenSSL's own function. Clearing before an I/O call is exactly what
// OpenSSL asks of every caller, so the other users in the process (Asio's
// SSL streams clear it themselves already; cpp-httplib) are unaffected.
//
// It must be linked into the executable itself (not a static library, whose
// unreferenced objects the linker drops): see CMakeLists.txt.

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <dlfcn.h>

#include <cstdlib>

namespace {

template <class F>
F real(const char* name) {
  auto* f = reinterpret_cast<F>(dlsym(RTLD_NEXT, name));
  if (!f)
    std::abort(); // libssl is linked: it cannot be missing
  return f;
}

} // namespace

extern "C" {

int SSL_read(SSL* ssl, void* buf, int num) {
  static auto f = real<int (*)(SSL*, void*, int)>("SSL_read");
  ERR_clear_error();
  return f(ssl, buf, num);
}

int SSL_write(SSL* ssl, const void* buf, int num) {
  static auto f = real<int (*)(SSL*, const void*, int)>("SSL_write");
  ERR_clear_error();
  return f(ssl, buf, num);
}

int SSL_accept(SSL* ssl) {
  static auto f = real<int (*)(SSL*)>("SSL_accept");
  ERR_clear_error();
  return f(ssl);
}

int SSL_connect(SSL* ssl) {
  static auto f = real<int (*)(SSL*)>("SSL_connect");
  ERR_clear_error();
  return f(ssl);
}

} // extern "C"
