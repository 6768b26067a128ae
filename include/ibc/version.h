// version: ibc's version string, and the git revision the Makefile passes (-DIBC_GIT_REV).
#ifndef IBC_VERSION_H
#define IBC_VERSION_H

#define IBC_VERSION "0.1"
#ifndef IBC_GIT_REV
#define IBC_GIT_REV "unknown"
#endif

#endif
