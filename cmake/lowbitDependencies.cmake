# What lowbit's libraries build on, found the same way by the build (CMakeLists.txt) and by a
# program that uses the installed library (lowbitConfig.cmake, with LOWBIT_AS_DEPENDENCY set:
# packages through find_dependency, and a missing library reported through lowbit_FOUND).
#
# The libraries without a usable CMake package on Debian 12 become imported targets:
#   lowbit::onednn      oneDNN (its CMake config wants OpenCL headers we do not use)
#   lowbit::opencv      OpenCV core, imgproc, imgcodecs (Debian ships the CMake config only with
#                       the all-modules libopencv-dev, so the three modules are found directly)
#   lowbit::onnx_proto  ONNX's generated protobuf messages (libonnx-dev)
if(LOWBIT_AS_DEPENDENCY)
  include(CMakeFindDependencyMacro)
  macro(_lowbit_find_package)
    find_dependency(${ARGN})
  endmacro()
else()
  macro(_lowbit_find_package)
    find_package(${ARGN} REQUIRED)
  endmacro()
endif()

_lowbit_find_package(Protobuf)
_lowbit_find_package(OpenMP)
_lowbit_find_package(fmt)
_lowbit_find_package(nlohmann_json)

set(_lowbit_missing)
find_library(LOWBIT_DNNL_LIB dnnl)
find_path(LOWBIT_DNNL_INCLUDE_DIR oneapi/dnnl/dnnl.hpp)
find_path(LOWBIT_OPENCV_INCLUDE_DIR opencv2/core.hpp PATH_SUFFIXES opencv4)
find_library(LOWBIT_ONNX_PROTO_LIB onnx_proto)
foreach(v LOWBIT_DNNL_LIB LOWBIT_DNNL_INCLUDE_DIR LOWBIT_OPENCV_INCLUDE_DIR LOWBIT_ONNX_PROTO_LIB)
  if(NOT ${v})
    list(APPEND _lowbit_missing ${v})
  endif()
endforeach()
set(_lowbit_opencv_libs)
foreach(m imgcodecs imgproc core)
  find_library(LOWBIT_OPENCV_${m}_LIB opencv_${m})
  if(NOT LOWBIT_OPENCV_${m}_LIB)
    list(APPEND _lowbit_missing LOWBIT_OPENCV_${m}_LIB)
  endif()
  list(APPEND _lowbit_opencv_libs ${LOWBIT_OPENCV_${m}_LIB})
endforeach()

if(_lowbit_missing)
  string(CONCAT _lowbit_msg "lowbit needs oneDNN, OpenCV (core, imgproc, imgcodecs) and ONNX's "
         "protobuf library (Debian: libdnnl-dev libopencv-core-dev libopencv-imgproc-dev "
         "libopencv-imgcodecs-dev libonnx-dev); not found: ${_lowbit_missing}")
  if(LOWBIT_AS_DEPENDENCY)
    set(lowbit_FOUND FALSE)
    set(lowbit_NOT_FOUND_MESSAGE "${_lowbit_msg}")
    return()
  endif()
  message(FATAL_ERROR "${_lowbit_msg}")
endif()

if(NOT TARGET lowbit::onednn)
  add_library(lowbit::onednn INTERFACE IMPORTED)
  set_target_properties(lowbit::onednn PROPERTIES
    INTERFACE_LINK_LIBRARIES "${LOWBIT_DNNL_LIB}"
    INTERFACE_INCLUDE_DIRECTORIES "${LOWBIT_DNNL_INCLUDE_DIR}")
endif()
if(NOT TARGET lowbit::opencv)
  add_library(lowbit::opencv INTERFACE IMPORTED)
  set_target_properties(lowbit::opencv PROPERTIES
    INTERFACE_LINK_LIBRARIES "${_lowbit_opencv_libs}"
    INTERFACE_INCLUDE_DIRECTORIES "${LOWBIT_OPENCV_INCLUDE_DIR}")
endif()
if(NOT TARGET lowbit::onnx_proto)
  add_library(lowbit::onnx_proto INTERFACE IMPORTED)
  set_target_properties(lowbit::onnx_proto PROPERTIES
    INTERFACE_LINK_LIBRARIES "${LOWBIT_ONNX_PROTO_LIB}")
endif()
