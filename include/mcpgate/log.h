/* log.h -- the error log: levelled lines on stderr (or a file), safe from any thread. */
#ifndef MCPGATE_LOG_H
#define MCPGATE_LOG_H

#include <stdarg.h>

typedef enum mg_log_level {
    MG_LOG_ERROR = 0,
    MG_LOG_WARN = 1,
    MG_LOG_INFO = 2,
    MG_LOG_DEBUG = 3,
} mg_log_level_t;

/* The level below which lines are written. Read without a lock: a torn read
 * of an int is not possible on our targets, and a stale level for one line
 * after a reload is harmless. Set it only through mg_log_set_level(). */
extern volatile int mg_log_threshold;

void mg_log_set_level(mg_log_level_t level);

/* Parse "error", "warn", "info" or "debug". Returns -1 for anything else. */
int mg_log_level_from_string(const char *name);

/* Write one line: "<iso8601 time> [level] message\n", as a single write(2)
 * so that lines from several workers never interleave. Never pass a token,
 * a secret or an Authorization header value in <fmt> arguments. */
void mg_log_write(mg_log_level_t level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void mg_log_vwrite(mg_log_level_t level, const char *fmt, va_list ap);

/* The level is checked before the arguments are evaluated, so a debug line
 * costs a compare when debug logging is off. */
#define mg_log(level, ...)                                                     \
    do {                                                                       \
        if ((int)(level) <= mg_log_threshold)                                  \
            mg_log_write((level), __VA_ARGS__);                                \
    } while (0)

#define mg_log_error(...) mg_log(MG_LOG_ERROR, __VA_ARGS__)
#define mg_log_warn(...) mg_log(MG_LOG_WARN, __VA_ARGS__)
#define mg_log_info(...) mg_log(MG_LOG_INFO, __VA_ARGS__)
#define mg_log_debug(...) mg_log(MG_LOG_DEBUG, __VA_ARGS__)

#endif /* MCPGATE_LOG_H */
