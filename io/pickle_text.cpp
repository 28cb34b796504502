#include "io/pickle_text.h"

#include <charconv>
#include <cstdlib>
#include <map>

#include "runtime/error.h"

namespace lathe {

namespace {

void append_utf8(std::string& out, std::uint32_t code) {
  if (code < 0x80) {
    out += static_cast<char>(code);
  } else if (code < 0x800) {
    out += static_cast<char>(0xC0 | (code >> 6));
    out += static_cast<char>(0x80 | (code & 0x3F));
  } else if (code < 0x10000) {
    out += static_cast<char>(0xE0 | (code >> 12));
    out += static_cast<char>(0x80 | ((code >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (code & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (code >> 18));
    out += static_cast<char>(0x80 | ((code >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((code >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (code & 0x3F));
  }
}

std::uint32_t hex_value(std::string_view digits) {
  std::uint32_t v = 0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v, 16);
  if (ec != std::errc() || end != digits.data() + digits.size()) {
    throw Error("text pickle: bad escape \\" + std::string(digits));
  }
  return v;
}

// The argument of UNICODE: Python's raw-unicode-escape, i.e. Latin-1 bytes plus \uXXXX and
// \UXXXXXXXX escapes (pickle writes a backslash and a newline that way).
std::string decode_raw_unicode_escape(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c == '\\' && i + 1 < s.size() && (s[i + 1] == 'u' || s[i + 1] == 'U')) {
      const std::size_t digits = s[i + 1] == 'u' ? 4 : 8;
      if (i + 2 + digits > s.size()) throw Error("text pickle: a cut \\u escape");
      append_utf8(out, hex_value(s.substr(i + 2, digits)));
      i += 1 + digits;
    } else {
      append_utf8(out, c);
    }
  }
  return out;
}

// The argument of STRING: a quoted Python bytes literal, 'abc' or "abc", with backslash escapes.
std::string decode_quoted(std::string_view s) {
  if (s.size() < 2 || (s.front() != '\'' && s.front() != '"') || s.back() != s.front()) {
    throw Error("text pickle: a STRING argument that is not quoted");
  }
  s = s.substr(1, s.size() - 2);
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '\\' || i + 1 == s.size()) {
      out += s[i];
      continue;
    }
    const char e = s[++i];
    switch (e) {
      case 'n':
        out += '\n';
        break;
      case 't':
        out += '\t';
        break;
      case 'r':
        out += '\r';
        break;
      case '0':
        out += '\0';
        break;
      case 'x':
        if (i + 2 >= s.size()) throw Error("text pickle: a cut \\x escape");
        out += static_cast<char>(hex_value(s.substr(i + 1, 2)));
        i += 2;
        break;
      default:
        out += e;
        break;  // \\ \' \"
    }
  }
  return out;
}

std::int64_t parse_integer(std::string_view s) {
  if (!s.empty() && s.back() == 'L') s.remove_suffix(1);
  std::int64_t v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) {
    throw Error("text pickle: '" + std::string(s) + "' is not an integer Lathe can hold");
  }
  return v;
}

class Unpickler {
 public:
  explicit Unpickler(std::string_view bytes) : bytes_(bytes) {}

  PickleValue run() {
    while (pos_ < bytes_.size()) {
      const char op = bytes_[pos_++];
      switch (op) {
        case '(':
          marks_.push_back(stack_.size());
          break;
        case 'l':
          push(collect(PickleValue::Kind::list));
          break;
        case 't':
          push(collect(PickleValue::Kind::tuple));
          break;
        case 'd':
          push(collect(PickleValue::Kind::dict));
          break;
        case ']':
          push(node(PickleValue::Kind::list));
          break;
        case ')':
          push(node(PickleValue::Kind::tuple));
          break;
        case '}':
          push(node(PickleValue::Kind::dict));
          break;
        case 'a': {
          const std::size_t v = pop();
          container(PickleValue::Kind::list).push_back(v);
          break;
        }
        case 'e': {
          const std::vector<std::size_t> items = pop_to_mark();
          auto& list = container(PickleValue::Kind::list);
          list.insert(list.end(), items.begin(), items.end());
          break;
        }
        case 's': {
          const std::size_t v = pop();
          const std::size_t k = pop();
          auto& dict = container(PickleValue::Kind::dict);
          dict.push_back(k);
          dict.push_back(v);
          break;
        }
        case 'u': {
          const std::vector<std::size_t> items = pop_to_mark();
          if (items.size() % 2 != 0) throw Error("text pickle: SETITEMS with an odd count");
          auto& dict = container(PickleValue::Kind::dict);
          dict.insert(dict.end(), items.begin(), items.end());
          break;
        }
        case 'p':
          memo_[parse_integer(line())] = top();
          break;
        case 'g': {
          const auto it = memo_.find(parse_integer(line()));
          if (it == memo_.end()) throw Error("text pickle: GET of a value never PUT");
          push(it->second);
          break;
        }
        case 'V': {
          Node n(PickleValue::Kind::text);
          n.text = decode_raw_unicode_escape(line());
          push(add(std::move(n)));
          break;
        }
        case 'S': {
          Node n(PickleValue::Kind::text);
          n.text = decode_quoted(line());
          push(add(std::move(n)));
          break;
        }
        case 'I':
        case 'L': {
          Node n(PickleValue::Kind::integer);
          const std::string_view arg = line();
          n.integer = arg == "01" ? 1 : arg == "00" ? 0 : parse_integer(arg);
          push(add(std::move(n)));
          break;
        }
        case 'F': {
          Node n(PickleValue::Kind::real);
          const std::string arg(line());
          char* end = nullptr;
          n.real = std::strtod(arg.c_str(), &end);
          if (end == arg.c_str()) throw Error("text pickle: '" + arg + "' is not a float");
          push(add(std::move(n)));
          break;
        }
        case 'N':
          push(add(Node(PickleValue::Kind::none)));
          break;
        case '0':
          pop();
          break;
        case '2':
          push(top());
          break;
        case '1':
          pop_to_mark();
          break;
        case '.':
          if (stack_.size() != 1)
            throw Error("text pickle: STOP with " + std::to_string(stack_.size()) + " values");
          return materialize(stack_.back(), 0);
        default:
          throw Error(std::string("text pickle: opcode '") + op + "' is not one Lathe reads");
      }
    }
    throw Error("text pickle: no STOP");
  }

 private:
  struct Node {
    explicit Node(PickleValue::Kind k) : kind(k) {}
    PickleValue::Kind kind;
    std::int64_t integer = 0;
    double real = 0.0;
    std::string text;
    std::vector<std::size_t> children;
  };

  std::string_view line() {
    const std::size_t end = bytes_.find('\n', pos_);
    if (end == std::string_view::npos) throw Error("text pickle: an argument without its newline");
    const std::string_view s = bytes_.substr(pos_, end - pos_);
    pos_ = end + 1;
    return s;
  }
  std::size_t add(Node n) {
    nodes_.push_back(std::move(n));
    return nodes_.size() - 1;
  }
  std::size_t node(PickleValue::Kind kind) { return add(Node(kind)); }
  void push(std::size_t n) { stack_.push_back(n); }
  std::size_t top() const {
    if (stack_.empty()) throw Error("text pickle: an empty stack");
    return stack_.back();
  }
  std::size_t pop() {
    const std::size_t n = top();
    stack_.pop_back();
    if (!marks_.empty() && marks_.back() > stack_.size())
      throw Error("text pickle: a pop past a mark");
    return n;
  }
  std::vector<std::size_t> pop_to_mark() {
    if (marks_.empty()) throw Error("text pickle: no mark");
    const std::size_t m = marks_.back();
    marks_.pop_back();
    std::vector<std::size_t> items(stack_.begin() + static_cast<std::ptrdiff_t>(m), stack_.end());
    stack_.resize(m);
    return items;
  }
  std::size_t collect(PickleValue::Kind kind) {
    std::vector<std::size_t> items = pop_to_mark();
    if (kind == PickleValue::Kind::dict && items.size() % 2 != 0)
      throw Error("text pickle: DICT with an odd count");
    Node n(kind);
    n.children = std::move(items);
    return add(std::move(n));
  }
  std::vector<std::size_t>& container(PickleValue::Kind kind) {
    Node& n = nodes_[top()];
    if (n.kind != kind) throw Error("text pickle: an item added to the wrong kind of value");
    return n.children;
  }
  // Shared references (GET) can make a small pickle stand for an enormous value: the values made
  // are counted, and a value of more than kMaxValues is refused.
  static constexpr std::size_t kMaxValues = 1 << 22;
  PickleValue materialize(std::size_t index, int depth) {
    if (depth > 64) throw Error("text pickle: nested too deeply (or a cycle)");
    if (++materialized_ > kMaxValues) throw Error("text pickle: a value of more than 4M items");
    const Node& n = nodes_[index];
    PickleValue v;
    v.kind = n.kind;
    v.integer = n.integer;
    v.real = n.real;
    v.text = n.text;
    for (const std::size_t c : n.children) v.items.push_back(materialize(c, depth + 1));
    return v;
  }

  std::string_view bytes_;
  std::size_t pos_ = 0;
  std::vector<Node> nodes_;
  std::vector<std::size_t> stack_;
  std::vector<std::size_t> marks_;
  std::map<std::int64_t, std::size_t> memo_;
  std::size_t materialized_ = 0;
};

}  // namespace

std::string PickleValue::as_name() const {
  if (kind == Kind::text) return text;
  if (kind == Kind::integer) return std::to_string(integer);
  throw Error("text pickle: a name that is neither text nor an integer");
}

PickleValue parse_text_pickle(std::string_view bytes) { return Unpickler(bytes).run(); }

}  // namespace lathe
