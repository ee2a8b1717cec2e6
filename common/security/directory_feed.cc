#include "security/directory_feed.h"

#include <spdlog/spdlog.h>

#include <stdexcept>


namespace trainyard::security {
namespace {

constexpr std::string_view kViewKey = "view";

}  // namespace

std::string serialize(const Directory& d) {
  flatbuffers::FlatBufferBuilder b;
  auto view = to_view(d);
  b.Finish(fb::DirectoryView::Pack(b, &view));
  return std::string(reinterpret_cast<const char*>(b.GetBufferPointer()), b.GetSize());
}

DirectoryFeed::DirectoryFeed(storage::Store& store, Directory config, std::string owner)
    : store_(store),
      cf_(store.cf(kColumnFamily)),
      config_(std::move(config)),
      stream_(bus::stream_name(kDirectoryPrefix, owner)) {
  if (auto bytes = value_or_throw(store_.get(cf_, kViewKey))) {
    flatbuffers::Verifier v(reinterpret_cast<const uint8_t*>(bytes->data()), bytes->size());
    if (!v.VerifyBuffer<fb::DirectoryView>(nullptr)) {
      throw std::runtime_error("the stored directory (column family directory, key view) is unreadable");
    }
    durable_ = from_view(*flatbuffers::GetRoot<fb::DirectoryView>(bytes->data()));
  }
  adopt(durable_);
}

void DirectoryFeed::adopt(Directory durable) {
  durable_ = std::move(durable);
  view_ = merged(config_, durable_);
}

bool DirectoryFeed::apply(const bus::Event& e, storage::Batch& batch) {
  if (e.type() != fb::Payload::DirectoryView) return false;
  if (e.stream() != stream_) {
    ++refused_;
    spdlog::warn("directory: ignored a directory event on stream {} (only {} is believed)", e.stream(), stream_);
    return true;
  }
  auto d = from_view(*e.as<fb::DirectoryView>());
  if (d.version <= durable_.version) return true;
  set(std::move(d), batch);
  spdlog::info("directory: version {} ({} users, {} accounts)", durable_.version, durable_.users.size(),
               durable_.accounts.size());
  return true;
}

void DirectoryFeed::set(Directory durable, storage::Batch& batch) {
  batch.put(cf_, kViewKey, serialize(durable));
  adopt(std::move(durable));
}

}  // namespace trainyard::security
