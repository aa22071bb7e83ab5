#include "match/geo.h"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace trialmatch::match {
namespace {

constexpr double kDegToRad = std::numbers::pi / 180.0;

}  // namespace

double HaversineKm(double lat1_deg, double lon1_deg, double lat2_deg,
                   double lon2_deg) {
  const double lat1 = lat1_deg * kDegToRad;
  const double lat2 = lat2_deg * kDegToRad;
  const double dlat = lat2 - lat1;
  const double dlon = (lon2_deg - lon1_deg) * kDegToRad;
  const double s1 = std::sin(dlat / 2);
  const double s2 = std::sin(dlon / 2);
  const double h = s1 * s1 + std::cos(lat1) * std::cos(lat2) * s2 * s2;
  const double hc = std::clamp(h, 0.0, 1.0);
  // atan2 keeps precision near the antipodes, where asin(sqrt(h)) does not.
  return 2 * kEarthRadiusKm * std::atan2(std::sqrt(hc), std::sqrt(1 - hc));
}

UnitVector ToUnitVector(double lat_deg, double lon_deg) {
  const double lat = lat_deg * kDegToRad;
  const double lon = lon_deg * kDegToRad;
  return UnitVector{static_cast<float>(std::cos(lat) * std::cos(lon)),
                    static_cast<float>(std::cos(lat) * std::sin(lon)),
                    static_cast<float>(std::sin(lat))};
}

double ChordSquaredToKm(double chord_squared) {
  const double half_chord = std::sqrt(std::clamp(chord_squared, 0.0, 4.0)) / 2;
  return 2 * kEarthRadiusKm * std::asin(std::min(half_chord, 1.0));
}

double KmToChordSquared(double km) {
  if (km <= 0) return 0;
  const double angle = km / kEarthRadiusKm;  // central angle, radians
  if (angle >= std::numbers::pi) return 4;
  const double chord = 2 * std::sin(angle / 2);
  return chord * chord;
}

}  // namespace trialmatch::match
