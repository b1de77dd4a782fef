/* placeholder until the harness lands */
#include "gateway/util.h"
