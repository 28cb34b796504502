// The two number tests of `lathe import`, beside from_chars.
//
// is_plain_decimal: the grammar check of pass 1, without converting.
//
// parse_short_decimal: an exact fast path for the short decimals nearly every CSV number is
// written as ("3.14", "-0.00123", "42", "6.02e5"): at most 19 significant digits whose integer
// value is at most 2^53 and a power of ten between 10^-22 and 10^22. Both are then exact doubles, and one IEEE
// multiplication or division rounds their product or quotient correctly (Clinger, 1990): the
// result is the correctly rounded value, the same bits std::from_chars gives. Anything else is left
// to the caller's general parser.
#pragma once

#include <string_view>

namespace lathe {

// True, with `number` set, when all of `text` is such a decimal: an optional '+' or '-', digits
// with an optional '.' (at least one digit in all), an optional exponent ('e' or 'E', an optional
// sign, digits of which at most 4 follow the leading zeros). False, `number` untouched, for everything else (the caller decides).
bool parse_short_decimal(std::string_view text, double& number);

// Whether all of `value` is plain decimal notation: an optional sign, digits with an optional
// fraction (at least one digit in all), an optional exponent. Every string it accepts, from_chars
// reads whole (a leading '+' removed; out-of-range values included).
bool is_plain_decimal(std::string_view value);

}  // namespace lathe
