// version: ibc's version string, and the git revision of the build: the Makefile writes it
// into $(BUILD)/ibc_rev.h (HEAD, "-dirty" when tracked files differ from it); a build without
// that header (another build system, a fuzz target) says "unknown".
#ifndef IBC_VERSION_H
#define IBC_VERSION_H

#define IBC_VERSION "0.1"
#if defined(__has_include)
#if __has_include("ibc_rev.h")
#include "ibc_rev.h"
#endif
#endif
#ifndef IBC_GIT_REV
#define IBC_GIT_REV "unknown"
#endif

#endif
