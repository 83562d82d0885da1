/* The libsystemd API sandboxd uses: sd_notify, sd_listen_fds_with_names, sd_watchdog_enabled and
 * sd_journal_sendv. The variadic sd_journal_send/sd_notifyf cannot be called from Swift and are not used. */
#ifndef SANDBOXD_CSYSTEMD_SHIM_H
#define SANDBOXD_CSYSTEMD_SHIM_H

#include <sys/uio.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-journal.h>

#endif
