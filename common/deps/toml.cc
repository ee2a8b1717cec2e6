// toml++ as a compiled library (TOML_HEADER_ONLY=0): its one implementation
// unit, as toml++ documents it, built once into Trainyard's binaries (see
// CMakeLists.txt here).
#define TOML_IMPLEMENTATION
#include <toml++/toml.h>
