// Fuzzes JSON body conversion both ways: a response body read into a Hana struct (body_as), and
// a journal/SQLite record read into a sync_action (parse_action). A record that decodes must
// re-encode and decode to the same action, and the streaming reader must agree with the tree
// form (Boost.JSON's parse, then decode_action) on every input.

#include <syncvault/body.hpp>
#include <syncvault/detail/action_codec.hpp>
#include <syncvault/detail/action_reader.hpp>

#include <boost/hana.hpp>

#include <cstdint>
#include <cstdlib>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace {
struct line_item {
    BOOST_HANA_DEFINE_STRUCT(line_item, (std::string, sku), (int, quantity));
};
struct order {
    BOOST_HANA_DEFINE_STRUCT(order, (std::int64_t, id), (std::string, status), (std::optional<double>, total),
                             (std::vector<line_item>, items), (std::map<std::string, std::string>, tags));
};
} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    const std::string_view text(reinterpret_cast<const char*>(data), size);

    if (auto parsed = syncvault::body_as<order>(text)) {
        auto again = syncvault::from_json<order>(syncvault::to_json(*parsed));
        if (!again || again->id != parsed->id || again->status != parsed->status ||
            again->items.size() != parsed->items.size())
            std::abort();
    }

    {
        boost::json::parse_options po;
        po.allow_invalid_utf8 = true;
        boost::system::error_code ec;
        const auto tree = boost::json::parse(text, ec, {}, po);
        const auto by_tree = ec ? syncvault::result<syncvault::sync_action>(ec) : syncvault::detail::decode_action(tree);
        const auto by_reader = syncvault::detail::parse_action(text);
        if (bool(by_tree) != bool(by_reader) || (by_tree && !(*by_tree == *by_reader))) std::abort();
    }

    if (auto action = syncvault::detail::parse_action(text)) {
        auto again = syncvault::detail::parse_action(syncvault::detail::serialize_action(*action));
        if (!again) std::abort();
        // Times are kept in milliseconds: compare what the format promises to keep.
        if (again->id != action->id || again->body != action->body || again->headers != action->headers ||
            again->sequence != action->sequence || again->state != action->state)
            std::abort();
    }
    return 0;
}
