// UTF-8 checks for what users and jobs write: refused or replaced at ingest.
#define BOOST_TEST_MODULE utf8
#include <boost/test/unit_test.hpp>

#include "text/utf8.h"

using trainyard::text::replace_invalid_utf8;
using trainyard::text::valid_utf8;

BOOST_AUTO_TEST_CASE(well_formed_text_of_every_length_is_valid) {
  for (const char* s : {"", "loss", "d\xC3\xA9j\xC3\xA0", "\xE6\x97\xA5\xE6\x9C\xAC", "\xF0\x9F\x9A\x82 train",
                        "\xEF\xBF\xBD", "\xF4\x8F\xBF\xBF"})
    BOOST_CHECK_MESSAGE(valid_utf8(s), s);
}

BOOST_AUTO_TEST_CASE(latin1_overlong_surrogates_and_truncations_are_invalid) {
  for (const char* s : {"\xE9t\xE9", "\xFF", "\xC0\xAF", "\xE0\x80\xAF", "\xED\xA0\x80", "\xF4\x90\x80\x80",
                        "\xC3", "\xE6\x97", "\xF0\x9F\x9A", "\x80", "a\xF8\x88\x80\x80\x80"})
    BOOST_CHECK_MESSAGE(!valid_utf8(s), s);
}

BOOST_AUTO_TEST_CASE(invalid_bytes_are_replaced_one_by_one_and_the_rest_kept) {
  BOOST_CHECK_EQUAL(replace_invalid_utf8("caf\xE9!"), "caf\xEF\xBF\xBD!");
  BOOST_CHECK_EQUAL(replace_invalid_utf8("loss\xED\xA0\x80"), "loss\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
  BOOST_CHECK_EQUAL(replace_invalid_utf8("ok \xC3\xA9"), "ok \xC3\xA9");
  BOOST_CHECK(valid_utf8(replace_invalid_utf8("\xFF\xFE\xC3")));
}
