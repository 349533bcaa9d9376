/* log.c -- the error log: one write(2) per line so workers never interleave. */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mcpgate/log.h"

volatile int mg_log_threshold = MG_LOG_INFO;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void
mg_log_set_level(mg_log_level_t level)
{
    mg_log_threshold = (int)level;
}

int
mg_log_level_from_string(const char *name)
{
    for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++)
        if (strcmp(name, level_names[i]) == 0)
            return (int)i;
    return -1;
}

void
mg_log_vwrite(mg_log_level_t level, const char *fmt, va_list ap)
{
    char line[2048];
    struct timespec now;
    struct tm tm;
    size_t off;
    int n;

    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    off = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
    n = snprintf(line + off, sizeof(line) - off, ".%03ldZ [%s] ",
                 now.tv_nsec / 1000000L, level_names[level & 3]);
    if (n > 0)
        off += (size_t)n;
    n = vsnprintf(line + off, sizeof(line) - off - 1, fmt, ap);
    if (n < 0)
        n = 0;
    off += (size_t)n;
    if (off > sizeof(line) - 2)
        off = sizeof(line) - 2; /* truncated: keep the newline */
    line[off++] = '\n';
    /* Control characters from untrusted input must not forge log lines. */
    for (size_t i = 0; i + 1 < off; i++)
        if ((unsigned char)line[i] < 0x20 && line[i] != '\t')
            line[i] = '?';
    ssize_t w = write(STDERR_FILENO, line, off);
    (void)w;
}

void
mg_log_write(mg_log_level_t level, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    mg_log_vwrite(level, fmt, ap);
    va_end(ap);
}
