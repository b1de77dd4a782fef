/* placeholder until the simulator lands */
#include "tools/sim/sim_model.h"
