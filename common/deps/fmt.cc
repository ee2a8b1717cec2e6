// fmt's implementation, compiled once into Trainyard's binaries (see
// CMakeLists.txt here). format-inl.h defines fmt's non-template functions;
// the templates that fmt's headers declare `extern` are instantiated below
// for the character type Trainyard formats.
#include <fmt/format-inl.h>

FMT_BEGIN_NAMESPACE
namespace detail {
template FMT_API auto thousands_sep_impl(locale_ref) -> thousands_sep_result<char>;
template FMT_API auto decimal_point_impl(locale_ref) -> char;
}  // namespace detail
FMT_END_NAMESPACE
