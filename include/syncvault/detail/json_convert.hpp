#ifndef SYNCVAULT_DETAIL_JSON_CONVERT_HPP
#define SYNCVAULT_DETAIL_JSON_CONVERT_HPP

// Users' BOOST_HANA_DEFINE_STRUCT types <-> Boost.JSON. Boost.JSON knows Boost.Describe but not
// Hana, so the walk over members is ours; everything else (numbers, strings, containers of
// them, types with their own tag_invoke) is Boost.JSON's value_from / try_value_to. Nesting
// works both ways: a vector of Hana structs, a Hana struct holding optionals and maps.

#include <syncvault/error.hpp>

#include <boost/hana/accessors.hpp>
#include <boost/hana/for_each.hpp>
#include <boost/hana/pair.hpp>
#include <boost/hana/string.hpp>
#include <boost/hana/concept/struct.hpp>
#include <boost/json.hpp>
#include <boost/system/result.hpp>

#include <map>
#include <optional>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <vector>

namespace syncvault::detail {

template <class T> struct is_optional : std::false_type {};
template <class T> struct is_optional<std::optional<T>> : std::true_type {};
template <class T> struct is_vector : std::false_type {};
template <class T, class A> struct is_vector<std::vector<T, A>> : std::true_type {};
template <class T> struct is_string_map : std::false_type {};
template <class V, class C, class A> struct is_string_map<std::map<std::string, V, C, A>> : std::true_type {};
template <class V, class H, class E, class A>
struct is_string_map<std::unordered_map<std::string, V, H, E, A>> : std::true_type {};

template <class T>
inline constexpr bool is_hana_struct = boost::hana::Struct<T>::value;

template <class T>
void to_json(boost::json::value& out, const T& v)
{
    if constexpr (is_hana_struct<T>) {
        auto& object = out.emplace_object();
        boost::hana::for_each(boost::hana::accessors<T>(), [&](auto member) {
            to_json(object[boost::hana::to<const char*>(boost::hana::first(member))],
                    boost::hana::second(member)(v));
        });
    } else if constexpr (is_optional<T>::value) {
        if (v) to_json(out, *v);
        else out = nullptr;
    } else if constexpr (is_vector<T>::value) {
        auto& array = out.emplace_array();
        array.reserve(v.size());
        for (const auto& e : v) to_json(array.emplace_back(nullptr), e);
    } else if constexpr (is_string_map<T>::value) {
        auto& object = out.emplace_object();
        for (const auto& [k, e] : v) to_json(object[k], e);
    } else {
        out = boost::json::value_from(v);
    }
}

template <class T>
boost::system::result<T> from_json(const boost::json::value& v)
{
    if constexpr (is_hana_struct<T>) {
        const auto* object = v.if_object();
        if (!object) return make_error_code(errc::invalid_request);
        T out{};
        std::error_code error;
        boost::hana::for_each(boost::hana::accessors<T>(), [&](auto member) {
            if (error) return;
            auto& field = boost::hana::second(member)(out);
            using field_type = std::remove_cvref_t<decltype(field)>;
            const auto* found = object->if_contains(boost::hana::to<const char*>(boost::hana::first(member)));
            if (!found) {
                if constexpr (!is_optional<field_type>::value) error = errc::invalid_request;
                return;  // absent optional: stays empty
            }
            auto converted = from_json<field_type>(*found);
            if (converted) field = std::move(*converted);
            else error = converted.error();
        });
        if (error) return error;
        return out;
    } else if constexpr (is_optional<T>::value) {
        if (v.is_null()) return T{};
        auto inner = from_json<typename T::value_type>(v);
        if (!inner) return inner.error();
        return T{std::move(*inner)};
    } else if constexpr (is_vector<T>::value) {
        const auto* array = v.if_array();
        if (!array) return make_error_code(errc::invalid_request);
        T out;
        out.reserve(array->size());
        for (const auto& e : *array) {
            auto converted = from_json<typename T::value_type>(e);
            if (!converted) return converted.error();
            out.push_back(std::move(*converted));
        }
        return out;
    } else if constexpr (is_string_map<T>::value) {
        const auto* object = v.if_object();
        if (!object) return make_error_code(errc::invalid_request);
        T out;
        for (const auto& [k, e] : *object) {
            auto converted = from_json<typename T::mapped_type>(e);
            if (!converted) return converted.error();
            out.emplace(std::string(k), std::move(*converted));
        }
        return out;
    } else {
        return boost::json::try_value_to<T>(v);
    }
}

} // namespace syncvault::detail

#endif
